service "dns" {
  listen = ["udp://127.0.0.1:5353", "127.0.0.1:5353"]
  proxy { backend = "127.0.0.1:53" }
}

service "relay" {
  listen = ["udp6://[::1]:5354"]
  handoff { socket = "/run/h.sock" }
}
