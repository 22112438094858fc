service "hello" {
  exec { command = ["/bin/cat"] }
}
