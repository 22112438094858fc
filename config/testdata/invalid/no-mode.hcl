service "hello" {
  listen = ["31337"]
}
