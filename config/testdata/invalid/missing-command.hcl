service "hello" {
  listen = ["31337"]
  exec {
    user = "helloworld"
  }
}
