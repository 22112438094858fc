log {
  level  = "warn"
  format = "json"
}

control {
  socket = "/tmp/acceptd-check/control.sock"
}

service "echo" {
  listen          = ["127.0.0.1:7007", "[::1]:7007", "/tmp/acceptd-check/echo.sock", "@acceptd-check"]
  max_connections = 10
  overflow        = "wait"
  allow           = ["127.0.0.0/8", "::1"]
  socket {
    backlog   = 128
    keepalive = true
    mode      = "0666"
  }
  exec {
    command            = ["cat"]
    ignore_exit_status = true
    stderr             = "null"
    environment        = { GREETING = "hi" }
    working_directory  = "/"
    runtime_max        = "1m"
    stop_timeout       = "2s"
  }
}
