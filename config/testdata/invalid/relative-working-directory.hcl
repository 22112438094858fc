service "hello" {
  listen = ["31337"]
  exec {
    command           = ["/bin/cat"]
    working_directory = "srv/hello"
  }
}
