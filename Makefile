# The two commands of the README: `make run` and `make test`.
# Both install missing Debian packages (scripts/setup.sh), configure and build.
BUILD ?= build
JOBS ?= $(shell nproc)

.PHONY: run test setup configure build clean format

setup:
	@scripts/setup.sh

$(BUILD)/build.ninja: | setup
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DPython3_EXECUTABLE=/usr/bin/python3

configure: setup $(BUILD)/build.ninja

build: configure
	ninja -C $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/bin/kilnc --model gpt -o $(BUILD)/gpt.kiln --dump-ir-dir $(BUILD)/ir-dumps/gpt
	$(BUILD)/bin/kiln-run $(BUILD)/gpt.kiln --summary --bench 20

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

format:
	git ls-files '*.cpp' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD)
