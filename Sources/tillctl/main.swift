print("tillctl")
