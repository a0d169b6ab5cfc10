//! Ferry's KVM runtime: a small VMM presenting the device-layout profile.
