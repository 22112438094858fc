service "hello" {
  listen = ["31337", "[::]:31337", ":31337", "tcp://[::]:31337"]
  exec { command = ["/bin/cat"] }
}
