service "hello" {
  listen = ["31337"]
  exec {
    command = ["/bin/cat"]
    stderr  = "journal"
  }
}
