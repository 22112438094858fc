service "hello" {
  listen = ["31337"]
  exec {
    accept  = false
    pass    = "fd"
    command = ["/bin/cat"]
  }
}
