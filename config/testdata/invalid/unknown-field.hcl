service "hello" {
  listen   = ["31337"]
  max_conn = 10
  exec { command = ["/bin/cat"] }
}
