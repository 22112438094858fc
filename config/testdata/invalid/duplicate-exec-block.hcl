service "hello" {
  listen = ["31337"]
  exec { command = ["/bin/cat"] }
  exec { command = ["/bin/cat", "-u"] }
}
