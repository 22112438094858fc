service "hello" {
  listen                     = ["31337"]
  max_connections_per_source = -1
  builtin                    = "echo"
}
