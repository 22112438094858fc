exit_idle_time = "-5m"

service "hello" {
  listen = ["31337"]
  exec {
    command      = ["/bin/cat"]
    stop_timeout = "5"
    runtime_max  = "-1s"
  }
}

service "web" {
  listen = ["8080"]
  proxy {
    backend         = "127.0.0.1:8000"
    connect_timeout = "5 seconds"
    connect_retry   = "1d"
    idle_timeout    = 10
  }
}

service "late" {
  listen = ["8081"]
  socket {
    defer_accept = "-5s"
  }
  proxy {
    backend = "127.0.0.1:8000"
  }
}
