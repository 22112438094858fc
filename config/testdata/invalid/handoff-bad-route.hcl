service "containers" {
  listen = ["[::]:22"]
  handoff {
    socket = "run/default.sock"
    route {
      local  = "2001:db8::1/129"
      socket = "/run/one.sock"
    }
    route {
      local  = "2001:db8::2"
      socket = "127.0.0.1:80"
    }
    route {
      local  = "2001:db8::2/128"
      socket = "/run/two.sock"
    }
    route {
      socket = "/run/three.sock"
    }
  }
}
