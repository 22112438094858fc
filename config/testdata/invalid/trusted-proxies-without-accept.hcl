service "hello" {
  listen          = ["31337"]
  trusted_proxies = ["10.0.0.0/8"]
  builtin         = "echo"
}
