service "hello" {
  listen = []
  exec { command = ["/bin/cat"] }
}
