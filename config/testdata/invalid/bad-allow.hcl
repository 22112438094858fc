service "hello" {
  listen  = ["31337"]
  allow   = ["10.0.0.0/33", "example.com", "::1"]
  deny    = "10.0.0.0/8"
  builtin = "echo"
}

service "proxies" {
  listen                = ["31338"]
  accept_proxy_protocol = true
  trusted_proxies       = ["10.0.0.1", "10.0.0.300"]
  builtin               = "echo"
}
