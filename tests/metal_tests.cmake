# Test executables that run Metal shaders (emulated or on a device): ctest label `metal`, and
# each test registered once per emulator thread order.
