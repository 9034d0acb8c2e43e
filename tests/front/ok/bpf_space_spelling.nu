bpf tracepoint "syscalls:sys_enter_openat" {|e| count --by $e.comm }
bpf kprobe "vfs_read" {|ctx| count }
