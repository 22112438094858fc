log {
  level = "info"
}

log {
  level = "debug"
}

service "hello" {
  listen = ["31337"]
  socket { backlog = 10 }
  socket { backlog = 20 }
  builtin = "echo"
}
