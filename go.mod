module github.com/pillar-db/pillar

go 1.26.8

require (
	github.com/golang/snappy v1.0.0
	github.com/stretchr/testify v1.12.1
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
