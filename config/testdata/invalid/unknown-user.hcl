service "hello" {
  listen = ["/run/hello.sock"]
  socket {
    owner = "nosuchowner"
  }
  exec {
    command = ["/bin/cat"]
    user    = "nosuchuser"
  }
}

service "web" {
  listen = ["8080"]
  proxy {
    backend = "127.0.0.1:8000"
    start {
      command = ["/usr/sbin/nginx"]
      user    = ""
    }
  }
}
