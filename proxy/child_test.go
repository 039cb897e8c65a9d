package proxy

const envTestChild = "CUTOVER_PROXY_TEST_CHILD"

func childMain() int { return 0 }
