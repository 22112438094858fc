service "web" {
  listen = ["8080"]
  proxy {
    backend = "unix:///run/web.sock"
    start {
      stop_when_idle = "10 minutes"
    }
  }
}
