service "hello" {
  listen          = ["31337"]
  max_connections = var.max
  exec { command = ["/bin/cat", upper("x")] }
}
