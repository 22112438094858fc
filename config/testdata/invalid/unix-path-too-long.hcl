service "hello" {
  listen = [
    "/run/acceptd/this/path/is/far/too/long/for/the/sun_path/field/of/a/sockaddr_un/structure/on/linux/hello.sock",
    "@an-abstract-name-that-is-also-far-too-long-for-the-sun_path-field-of-a-sockaddr_un-structure-on-linux-hello-world",
    "handoff:/run/acceptd/this/path/is/far/too/long/for/the/sun_path/field/of/a/sockaddr_un/structure/on/linux/accept.sock",
    "/run/acceptd/dir/",
  ]
  exec { command = ["/bin/cat"] }
}
