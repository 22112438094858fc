service "web" {
  listen = ["127.0.0.1:8080", "/run/web.sock"]
  proxy {
    backend = "tcp://127.0.0.1:8080"
  }
}

service "unix" {
  listen = ["/run/unix.sock"]
  proxy {
    backend = "unix:///run/unix.sock"
  }
}
