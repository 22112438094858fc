service "hello" {
  listen = ["31337"]
  exec {
    command     = ["/bin/cat"]
    environment = { "A=B" = "x", "" = "empty" }
  }
}

service "list" {
  listen = ["31338"]
  exec {
    command     = ["/bin/cat"]
    environment = ["A=B"]
  }
}
