service "one" {
  listen  = ["/run/acceptd-test/x.sock", "udp://127.0.0.1:7"]
  builtin = "echo"
}

service "two" {
  listen = ["unix:///run/acceptd-test/x.sock"]
  exec { command = ["/bin/cat"] }
}

service "three" {
  listen  = ["udp://127.0.0.1:7", "handoff:/run/acceptd-test/x.sock", "127.0.0.1:7"]
  builtin = "discard"
}
