service "hello" {
  listen = ["/run/hello.sock"]
  socket {
    group = "nosuchsocketgroup"
  }
  exec {
    command = ["/bin/cat"]
    user    = "helloworld"
    group   = "nosuchgroup"
  }
}
