//! `aya::Pod` for every type user space reads from or writes to a map.

// SAFETY: plain #[repr(C)] data; any bit pattern is valid.
unsafe impl aya::Pod for crate::ServiceKey {}
unsafe impl aya::Pod for crate::ServiceValue {}
unsafe impl aya::Pod for crate::DestValue {}
unsafe impl aya::Pod for crate::Counters {}
unsafe impl aya::Pod for crate::RateEstimate {}
unsafe impl aya::Pod for crate::TunnelSource {}
unsafe impl aya::Pod for crate::SetEntry {}
unsafe impl<const N: usize> aya::Pod for crate::DestSet<N> {}
unsafe impl<const N: usize> aya::Pod for crate::ServiceEntry<N> {}
unsafe impl aya::Pod for crate::SlotConns {}
unsafe impl aya::Pod for crate::DestCounts {}
unsafe impl<const N: usize> aya::Pod for crate::ServiceSched<N> {}
unsafe impl aya::Pod for crate::SchedState {}
unsafe impl aya::Pod for crate::BelowHalf {}
unsafe impl aya::Pod for crate::TwosSums {}
unsafe impl aya::Pod for crate::PersistParams {}
unsafe impl aya::Pod for crate::CallId {}
unsafe impl aya::Pod for crate::WrrKey {}
unsafe impl aya::Pod for crate::ConnKey {}
unsafe impl aya::Pod for crate::Conn {}
unsafe impl aya::Pod for crate::Neighbour {}
unsafe impl aya::Pod for crate::LookupTable {}
unsafe impl aya::Pod for crate::FragmentKey {}
unsafe impl aya::Pod for crate::FragmentEntry {}
unsafe impl aya::Pod for crate::SweepRecord {}
unsafe impl aya::Pod for crate::FullnatPeer {}
unsafe impl aya::Pod for crate::LocalAddresses {}
