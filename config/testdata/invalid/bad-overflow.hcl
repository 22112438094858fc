service "hello" {
  listen   = ["31337"]
  overflow = "queue"
  builtin  = "echo"
}
