metrics {
  listen = "127.0.0.1:9464"
}

control {
  socket = "/run/acceptd-test/control.sock"
}

service "hello" {
  listen  = ["127.0.0.1:9464", "/run/acceptd-test/control.sock"]
  builtin = "echo"
}
