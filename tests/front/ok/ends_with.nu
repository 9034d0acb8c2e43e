bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.filename ends-with ".conf" { emit $e.filename } }
