service "hello" {
  listen = ["31337"]
  exec {
    command           = ["/bin/cat"]
    dynamic_user      = true
    no_new_privileges = false
  }
}
