bpf_tracepoint "syscalls:sys_enter_openat" {|e| $e.filename | str length }
