service "hello" {
  listen          = ["31337"]
  max_connections = "many"
  socket {
    reuse_port = "perhaps"
    backlog    = 0
  }
  exec {
    command            = ["/bin/cat"]
    ignore_exit_status = "maybe"
  }
}
