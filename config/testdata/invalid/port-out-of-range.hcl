service "hello" {
  listen = ["0", "65536", "127.0.0.1:99999", "[::1]:http"]
  exec { command = ["/bin/cat"] }
}
