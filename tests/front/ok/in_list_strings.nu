bpf_tracepoint "syscalls:sys_enter_openat" {|e| if $e.comm in ["bash" "sh" "zsh"] { emit $e.filename } }
