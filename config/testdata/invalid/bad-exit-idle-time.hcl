exit_idle_time = "soon"
