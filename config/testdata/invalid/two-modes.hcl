service "hello" {
  listen = ["31337"]
  exec { command = ["/bin/cat"] }
  proxy { backend = "127.0.0.1:8000" }
}
