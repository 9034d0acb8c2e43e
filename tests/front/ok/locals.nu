bpf_tracepoint "syscalls:sys_enter_openat" {|e|
    let f = $e.filename
    let big = $e.flags * 2
    if $f starts-with "/etc/" { emit {file: $f, flags2: $big} }
}
