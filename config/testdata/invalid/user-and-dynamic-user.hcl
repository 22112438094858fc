service "hello" {
  listen = ["31337"]
  exec {
    command      = ["/bin/cat"]
    user         = "helloworld"
    group        = "helloworld"
    dynamic_user = true
  }
}
