bpf_uprobe "/nonexistent/nubpf-test-binary" "main" {|ctx| count }
