service "hello" {
  listen = ["65536", "127.0.0.1:99999", "[::1]:http", "127.0.0.1:0", "127.0.0.1:0"]
  exec { command = ["/bin/cat"] }
}

service "relay" {
  listen = ["[::1]:0"]
  proxy { backend = "127.0.0.1:0" }
}
