control {
  mode = "600"
}

service "hello" {
  listen = ["/run/hello.sock"]
  socket {
    mode = "0999"
  }
  exec {
    command = ["/bin/cat"]
    umask   = "0o22"
  }
}

service "other" {
  listen = ["/run/other.sock"]
  socket {
    mode = 660
  }
  exec {
    command = ["/bin/cat"]
    umask   = "01777"
  }
}
