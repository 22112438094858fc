service "web" {
  listen = ["8080"]
  proxy {
    backend         = "unix:///run/web.sock"
    proxy_protocol  = "v3"
    connect_timeout = "0s"
  }
}
