bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.comm == "bash" and $e.filename != "/dev/null" { emit $e.filename } }
