service "a" {
  listen = ["8001"]
  proxy { backend = "udp://127.0.0.1:53" }
}

service "b" {
  listen = ["8002"]
  proxy { backend = "systemd:web" }
}

service "c" {
  listen = ["8003"]
  proxy { backend = "8000" }
}

service "d" {
  listen = ["8004"]
  proxy { backend = "localhost:8000" }
}

service "e" {
  listen = ["8005"]
  proxy {}
}
