dynamic_users {
  range = "65519-61184"
}

service "hello" {
  listen = ["31337"]
  exec {
    command      = ["/bin/cat"]
    dynamic_user = true
  }
}
