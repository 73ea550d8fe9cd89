// kiln-verify-program reports every problem of a module at once.
// RUN: kiln-opt %s --split-input-file --allow-unregistered-dialect --kiln-verify-program --verify-diagnostics

// expected-error @below {{argument 1 has a dynamic shape: tensor<?xf32>}}
func.func @all_problems(%x: tensor<4xf32>, %y: tensor<?xf32>) -> tensor<4xf32> {
  // expected-error @below {{'test.one' (2 uses) is not a kiln op}}
  %0 = "test.one"(%x) : (tensor<4xf32>) -> tensor<4xf32>
  // expected-error @below {{'test.two' (1 use) is not a kiln op}}
  %1 = "test.two"(%0) : (tensor<4xf32>) -> tensor<4xf32>
  %2 = "test.one"(%1) : (tensor<4xf32>) -> tensor<4xf32>
  return %2 : tensor<4xf32>
}

// -----

// expected-error @below {{expected exactly one public function with a body (the model), found 2}}
module {
  func.func @a(%x: tensor<4xf32>) -> tensor<4xf32> { return %x : tensor<4xf32> }
  func.func @b(%x: tensor<4xf32>) -> tensor<4xf32> { return %x : tensor<4xf32> }
}

// -----

// expected-error @below {{parameter name 'w' is used by more than one argument}}
func.func @duplicate_params(%a: tensor<4xf32> {kiln.param = "w"},
                            %b: tensor<4xf32> {kiln.param = "w"}) -> tensor<4xf32> {
  %0 = kiln.add %a, %b : (tensor<4xf32>, tensor<4xf32>) -> tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

func.func @unranked(%x: tensor<4xf32>) -> tensor<*xf32> {
  // expected-error @below {{'test.cast' (1 use) is not a kiln op}}
  // expected-error @below {{result 0 is not a ranked tensor: tensor<*xf32>}}
  %0 = "test.cast"(%x) : (tensor<4xf32>) -> tensor<*xf32>
  return %0 : tensor<*xf32>
}

// -----

// expected-error @below {{argument 0 has both kiln.param and kiln.name; it is either a parameter or an input}}
func.func @both(%a: tensor<4xf32> {kiln.param = "w", kiln.name = "x"}) -> tensor<4xf32> {
  %0 = kiln.relu %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @below {{argument 0: name must be a string, got 3 : i64}}
func.func @not_a_string(%a: tensor<4xf32> {kiln.name = 3}) -> tensor<4xf32> {
  %0 = kiln.relu %a : tensor<4xf32>
  return %0 : tensor<4xf32>
}

// -----

// expected-error @below {{the model returns nothing; it needs at least one output}}
func.func @no_outputs(%a: tensor<4xf32>) {
  return
}

// -----

// expected-error @below {{argument 0 is too large (its byte size overflows): tensor<4611686018427387904x4xf32>}}
func.func @huge(%a: tensor<4611686018427387904x4xf32>) -> tensor<4611686018427387904x4xf32> {
  return %a : tensor<4611686018427387904x4xf32>
}
