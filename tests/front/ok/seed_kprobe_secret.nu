bpf_kprobe "do_sys_open" {|ctx| if $ctx.filename == "secret.txt" { emit($ctx.pid) } }
