module github.com/rspstub/rspstub

go 1.26.8

require (
	github.com/creack/pty v1.1.24
	github.com/ianlancetaylor/demangle v0.0.0-20260724033716-83e58baca724
	github.com/saferwall/pe v1.6.5
	github.com/stretchr/testify v1.12.1
	golang.org/x/arch v0.32.0
	golang.org/x/sys v0.30.0
	golang.org/x/text v0.22.0
)

require (
	github.com/ayoubfaouzi/pkcs7 v0.2.3 // indirect
	github.com/edsrzf/mmap-go v1.1.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	golang.org/x/crypto v0.33.0 // indirect
)
